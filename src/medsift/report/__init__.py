"""medsift.report"""
