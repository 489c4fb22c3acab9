package rsync

import "testing"

// The wire constants of PROTOCOL.md. Changing one changes the protocol: bump
// protocolVersion and the document.
func TestWireConstants(t *testing.T) {
	for name, c := range map[string][2]int{
		"protocolVersion": {protocolVersion, 2},
		"msgHello":        {msgHello, 0x01},
		"msgManifest":     {msgManifest, 0x02},
		"msgManifestEnd":  {msgManifestEnd, 0x03},
		"msgData":         {msgData, 0x04},
		"msgReply":        {msgReply, 0x10},
		"msgNeed":         {msgNeed, 0x11},
		"msgResult":       {msgResult, 0x12},
		"flagZstd":        {flagZstd, 0x01},
		"codecZstd":       {codecZstd, 1},
		"modeTree":        {modeTree, 1},
		"modeBlob":        {modeBlob, 2},
		"helloDelete":     {helloDelete, 1},
		"helloFsync":      {helloFsync, 2},
		"treeReady":       {treeReady, 0},
		"blobHave":        {blobHave, 1},
		"blobNeed":        {blobNeed, 2},
		"treeRefused":     {treeRefused, 3},
		"resultOwned":     {resultOwned, 1},
		"recFile":         {recFile, 'F'},
		"recLit":          {recLit, 'L'},
		"recCopy":         {recCopy, 'C'},
		"recEnd":          {recEnd, 'E'},
		"recSkip":         {recSkip, 'S'},
		"entDir":          {entDir, 'd'},
		"entFile":         {entFile, 'f'},
		"entLink":         {entLink, 'l'},
		"shaLen":          {shaLen, 32},
		"strongLen":       {strongLen, 8},
		"maxLit":          {maxLit, 128 << 10},
		"maxBody":         {maxBody, 4 << 20},
		"maxNeedBody":     {maxNeedBody, 16 << 20},
		"minBlock":        {minBlock, 512},
		"maxBlock":        {maxBlock, 1 << 20},
		"maxBlocks":       {maxBlocks, 699050},
		"maxPathLen":      {maxPathLen, 4096},
		"maxNameLen":      {maxNameLen, 255},
		"maxLinkLen":      {maxLinkLen, 4096},
		"maxPatterns":     {maxPatterns, 4096},
		"maxPatternLen":   {maxPatternLen, 4096},
		"maxEntries":      {maxEntries, 1 << 26},
		"maxDepth":        {maxDepth, 256},
		"maxIdentity":     {maxIdentity, 512},
		"maxBasis":        {maxBasis, 16},
		"maxNameArg":      {maxNameArg, 1024},
	} {
		if c[0] != c[1] {
			t.Errorf("%s = %#x, PROTOCOL.md says %#x", name, c[0], c[1])
		}
	}
	if tempPrefix != ".godist-rsync." {
		t.Errorf("tempPrefix %q", tempPrefix)
	}
	if markerName != ".godist-sync" || markerHeader != "godist-sync 1" {
		t.Errorf("markerName %q, markerHeader %q", markerName, markerHeader)
	}
}
