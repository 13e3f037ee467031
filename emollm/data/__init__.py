"""Data: the Sample schema, manifests, importers, SynthMER, instruction recipes and the processor."""
