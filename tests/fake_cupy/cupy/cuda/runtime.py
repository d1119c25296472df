"""``cupy.cuda.runtime``: one device, CUDA 13.0 (numbers as CUDA encodes them)."""


def getDeviceCount():
    return 1


def runtimeGetVersion():
    return 13000


def driverGetVersion():
    return 13000


def getDevice():
    return 0


def getDeviceProperties(device):
    return {"name": b"fake cupy: CPU emulation of one GPU", "totalGlobalMem": 1 << 34,
            "multiProcessorCount": 1, "major": 9, "minor": 0}


def deviceSynchronize():
    return None
