"""CUDA sources of minialex (*.cu, *.cuh), shipped as package data of ``minialex.kernels``.

Nothing to import here: minialex.cuda.sources finds these files and minialex.cuda.kernels
compiles them with CuPy. See README.md in this directory for the kernels and their versions.
"""
