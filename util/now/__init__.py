"""The NoW benchmark (Sanyal et al. 2019): its files, the scan crop, the alignment and the
scan-to-mesh error, as the official evaluation defines them (docs/formats.md §17)."""
