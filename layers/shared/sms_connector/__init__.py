"""The SMS connector service: shared code for every Lambda function of the stack."""
