"""medsift.engine"""
