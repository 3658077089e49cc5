"""Retrieve-and-refine's encoder input (Weston, Dinan & Miller 2018): the context, a
separator, then a retrieved reply. One definition, so training (`nlp.training.run`) and
generation (`nlp.generation.generator`) build the same input."""


def refined_source(context: str, retrieved: str, separator: str) -> str:
    """The encoder input of a retrieve-and-refine model. The reply goes last: a chat source
    longer than the model reads keeps its last tokens (`nlp.generation.codec.kept_source_end`),
    so earlier turns are cut before the draft and the message it answers. With nothing
    retrieved the separator still ends the input, as in training pairs without a match."""
    return f"{context}{separator}{retrieved}".rstrip()
