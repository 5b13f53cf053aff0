"""thresher: separate grain from chaff in LLM post-training data.

Sample N answers per prompt from teachers and students, let judges (reward
models, LLM-as-judge, math and code verifiers) score them, keep the best,
export SFT, critique-SFT and DPO data, train, and measure per-task gains.
"""

__version__ = "0.1.0"
