"""Reading content too long for one model call: chunk, rank, then answer from the best
chunks or map over all of them (`llm-map`, `llm`'s overflow, `llm_call` in llm-exec).

    tokens     tiktoken, loaded offline when it must be
    chunking   messages -> overlapping chunks of N tokens, each message on its own
    lexical    offline rankers (BM25, hashed vectors)
    embedders  rankers by name, model embeddings (GGUF, /v1/embeddings), fusion
    vectors    faiss search
    calls      concurrent model calls: bound, retries, order, failures
    prompts    what each step tells the model
    strategy   auto | top | mapreduce, hierarchical reduce, --each
    overflow   what `llm` and `llm_call` do with a prompt that does not fit

Nothing here imports click; numpy, faiss and tiktoken are imported where they are used.
"""
