"""Distill Explorer core library: the science, data, training and storage behind the app."""
