"""medsift.label"""
