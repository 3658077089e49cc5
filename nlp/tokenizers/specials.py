"""Special token ids, fixed in one place so every vocabulary, model and decoder agrees."""

PAD_ID = 0
BOS_ID = 1
EOS_ID = 2
UNK_ID = 3

PAD = "<pad>"
BOS = "<s>"
EOS = "</s>"
UNK = "<unk>"

SPECIAL_TOKENS: tuple[str, ...] = (PAD, BOS, EOS, UNK)
