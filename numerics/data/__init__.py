"""Problems: the `Problem` type and seed splitting (`problem`), teachers, real data (`sunspots`)."""
