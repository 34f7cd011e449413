"""Layers of one model on other machines, through ggml's RPC backend.

`pasture worker` offers a machine's CPU to runners elsewhere (`worker`); a runner attaches
workers before its model loads (`library.attach`), and llama.cpp places the offloaded
layers on them. The parent side decides which workers and how many layers each
(`workers`, `split`).
"""
