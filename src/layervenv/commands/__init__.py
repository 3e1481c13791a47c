"""One module per command (``layervenv COMMAND``).

A regular package, not a namespace one: zipimport (``layervenv.pyz``) finds no
namespace package in an archive without directory entries.
"""
