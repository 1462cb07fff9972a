"""Triage: what a message is, what it is about, how urgent, and why — from rules in data."""
