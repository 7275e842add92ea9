"""medsift.preprocess"""
