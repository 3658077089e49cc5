"""`s2s pretrain`: the seq2seq model's parts trained on unlabelled text before `s2s train`
(Dai & Le 2015; Ramachandran et al. 2017), its output read by `model.pretrained=DIR`."""
