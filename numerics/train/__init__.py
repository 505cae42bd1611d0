"""Training: the one loop for any model on any `Problem` (`loop`), and the network-versus-kernel
comparison built on it (`compare`)."""
