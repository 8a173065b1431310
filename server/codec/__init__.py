"""JSON on the hot paths: strict encoding and a collector pause while large acyclic values are built."""
