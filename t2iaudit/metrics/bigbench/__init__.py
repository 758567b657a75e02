"""The BIGbench family: implicit (D5), explicit (D6) and manifestation-factor (D7) scores."""
