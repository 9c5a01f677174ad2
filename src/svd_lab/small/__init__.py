"""The tiny SVD that has learned: SVD's own networks, sized for a CPU, trained on camera pans (see data.py)."""
