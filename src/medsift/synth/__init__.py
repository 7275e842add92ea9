"""medsift.synth"""
