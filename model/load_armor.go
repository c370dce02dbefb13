package model

import "fmt"

func loadArmor(path string) (*Model, error) {
	return nil, fmt.Errorf("model: %s: .armor files are not readable yet", path)
}
