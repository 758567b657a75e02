"""The distribution family: label shares and D1-D11 per prompt and aggregated, with their intervals."""
