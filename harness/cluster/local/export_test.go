package local

// CopyTree is copyTree, for the specs of the copy itself.
var CopyTree = copyTree
