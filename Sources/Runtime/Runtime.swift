// The runtime: file formats and the loader of compiled model libraries.
