"""medsift.tasks"""
