"""rotation"""
