"""medsift.metrics"""
