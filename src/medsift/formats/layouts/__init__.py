"""medsift.formats.layouts"""
