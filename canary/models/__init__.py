"""The Canary resources and the objects they refer to, as pydantic models: the single
source of truth of the CRDs and of everything that reads or writes them."""
