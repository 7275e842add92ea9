"""medsift.audit"""
