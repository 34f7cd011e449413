module pasture/fuzz/gotemplate_diff

go 1.22
