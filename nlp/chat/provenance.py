"""Where a reply came from, in words: what `/why`, `s2s chat` and `s2s serve` tell people.

Why say it: a retrieved reply is a sentence another person wrote (a training pair's reply),
sent as it is; a refined one was written by the model reading such a sentence beside the
message. People should be able to tell those from what the model wrote alone.
"""

from __future__ import annotations

from nlp.generation.text_generator import Generation


def provenance_note(reply: Generation) -> str:
    """One sentence on where `reply` came from ("" for a reply the model wrote alone)."""
    if reply.provenance == "retrieved":
        return (
            "I did not write this reply: it is a person's reply to the training post nearest "
            f"your message ({reply.pair or 'training pair'}), sent as it was written."
        )
    if reply.provenance == "refined":
        return (
            "I wrote this reply reading your message together with a person's reply to the "
            f"training post nearest it ({reply.pair or 'training pair'})."
        )
    return ""
