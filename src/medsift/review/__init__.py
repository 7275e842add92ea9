"""medsift.review"""
