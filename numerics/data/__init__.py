"""Problems: the `Problem` type and seed splitting (`problem`), teachers, real data (`sunspots`),
Tomita grammars (`tomita`), pixel-by-pixel digits and MNIST IDX files (`digits`)."""
