"""medsift.formats"""
