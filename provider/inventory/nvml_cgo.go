//go:build cgo

package inventory

import (
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// DetectNVML lists the GPUs NVML sees. Without a driver it returns
// ErrNoDriver and calls nothing else: go-nvml's symbols are unresolved after
// a failed Init and using them kills the process.
func DetectNVML() ([]GPU, string, error) {
	if ret := nvml.Init(); ret != nvml.SUCCESS {
		if ret == nvml.ERROR_LIBRARY_NOT_FOUND || ret == nvml.ERROR_DRIVER_NOT_LOADED {
			return nil, "", ErrNoDriver
		}
		return nil, "", fmt.Errorf("nvml init: return code %d", int(ret))
	}
	defer func() { _ = nvml.Shutdown() }() // the devices were read; nothing to do about a failed shutdown

	driver, ret := nvml.SystemGetDriverVersion()
	if ret != nvml.SUCCESS {
		return nil, "", fmt.Errorf("driver version: %v", ret)
	}
	n, ret := nvml.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, "", fmt.Errorf("device count: %v", ret)
	}
	gpus := make([]GPU, 0, n)
	for i := 0; i < n; i++ {
		dev, ret := nvml.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			gpus = append(gpus, GPU{Index: i, Healthy: false, Health: fmt.Sprintf("unreadable: %v", ret)})
			continue
		}
		g := GPU{Index: i, Healthy: true, Health: "ok"}
		if g.Name, ret = dev.GetName(); ret != nvml.SUCCESS {
			g.Healthy, g.Health = false, fmt.Sprintf("name: %v", ret)
		}
		if g.UUID, ret = dev.GetUUID(); ret != nvml.SUCCESS {
			g.Healthy, g.Health = false, fmt.Sprintf("uuid: %v", ret)
		}
		if mem, ret := dev.GetMemoryInfo(); ret == nvml.SUCCESS {
			g.MemoryMiB = mem.Total >> 20
		} else {
			g.Healthy, g.Health = false, fmt.Sprintf("memory info: %v", ret)
		}
		// Pages waiting for retirement mean uncorrectable memory errors
		// until the next reset: do not lease such a device.
		if pending, ret := dev.GetRetiredPagesPendingStatus(); ret == nvml.SUCCESS && pending == nvml.FEATURE_ENABLED {
			g.Healthy, g.Health = false, "retired pages pending (reset needed)"
		}
		g.Model = FromNVMLName(g.Name)
		g.Interface = InterfaceFromName(g.Name)
		gpus = append(gpus, g)
	}
	return gpus, driver, nil
}

// GPUUsage reads what each GPU (by UUID) is doing now: its utilization
// over NVML's last sample period and the memory in use. A UUID NVML does
// not know is left out.
func GPUUsage(uuids []string) (map[string]Usage, error) {
	if ret := nvml.Init(); ret != nvml.SUCCESS {
		if ret == nvml.ERROR_LIBRARY_NOT_FOUND || ret == nvml.ERROR_DRIVER_NOT_LOADED {
			return nil, ErrNoDriver
		}
		return nil, fmt.Errorf("nvml init: return code %d", int(ret))
	}
	defer func() { _ = nvml.Shutdown() }() // read-only; nothing to do about a failed shutdown
	out := map[string]Usage{}
	for _, id := range uuids {
		dev, ret := nvml.DeviceGetHandleByUUID(id)
		if ret != nvml.SUCCESS {
			continue
		}
		var u Usage
		if rates, ret := dev.GetUtilizationRates(); ret == nvml.SUCCESS {
			u.UtilizationPercent = rates.Gpu
		}
		if mem, ret := dev.GetMemoryInfo(); ret == nvml.SUCCESS {
			u.MemoryUsedMiB, u.MemoryTotalMiB = mem.Used>>20, mem.Total>>20
		}
		out[id] = u
	}
	return out, nil
}
