"""medsift.io"""
