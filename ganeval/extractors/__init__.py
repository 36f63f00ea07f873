"""Extractors: named producers of parts behind one protocol (``base.Extractor``) — Inception-v3
(``inception``), VGG16 (``vgg16``) and the SWD pixel sampler (``swd_pixels``); ``build`` makes each from a
run's options and ``weights`` finds, verifies, converts and downloads their weights."""
