"""The hallucination family: caption-based H1/H3 (TBYB) and label-based adherence rates H2, H4-H6."""
