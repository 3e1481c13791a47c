"""What a layer, a stack, a lock and a kernelspec are, on disk and in memory."""
