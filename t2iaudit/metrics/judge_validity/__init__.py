"""Judge validity: agreement (J1), abstention (J2), error-corrected shares (J3), fairness (J4)."""
