"""Feature extractors and what they share: the resolution of their weights (``weights``)."""
