"""Before-the-model reducers: which tubelets of a clip become tokens (dense, RLT, random masking)."""
