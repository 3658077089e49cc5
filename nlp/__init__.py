"""Word-level attention seq2seq for chatbots and headline generation."""

__version__ = "0.1.0"
