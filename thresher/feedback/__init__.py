"""Feedback: judged candidates become training data, every row explainable.

- `policies`: which candidates are kept (best, threshold, gated, vote, top_k,
  and the random control), each with the judge and score that justify it;
- `dpo`: honest preference pairs (no ties, no identical texts, no verifier
  overruled), with every dropped pair counted;
- `critique`: critique-SFT rows that teach a model to judge (English, Chinese);
- `filters`, `dedup`: length / format filters and exact / MinHash near-duplicate
  removal, each counting what it removed and why;
- `mixing`: combining exports by ratio and per-task repeats, seeded;
- `stage.export_stage`: the streaming stage that writes a round's
  sft.jsonl, critique_sft.jsonl and dpo.jsonl.
"""

from thresher.feedback.dpo import DPO_RULES
from thresher.feedback.policies import POLICIES, Kept, Selection, build_policy
from thresher.feedback.stage import export_stage

__all__ = ["DPO_RULES", "POLICIES", "Kept", "Selection", "build_policy", "export_stage"]
