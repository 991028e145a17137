"""The demo renderer: a deferred OpenGL renderer (moderngl) that makes the G-buffers, shaded
frames and ground truth the product is trained and judged on, and the interactive demo."""
