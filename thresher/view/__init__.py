"""`thresher view`: a local, read-only web page over run directories.

- `index`: one DuckDB database built from the runs' JSONL shards (cached
  outside the runs, rebuilt when a file changes), with each prompt's filter
  flags computed in SQL;
- `queries`: the SQL behind each page (a filtered page of prompts, one
  prompt in full, the round overview);
- `pages`: server-rendered HTML, no JavaScript build;
- `server`: the standard library's threaded HTTP server on 127.0.0.1.
"""
