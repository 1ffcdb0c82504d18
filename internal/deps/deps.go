package deps
import (
 _ "github.com/gofiber/fiber/v2"
 _ "go.etcd.io/bbolt"
 _ "github.com/santhosh-tekuri/jsonschema/v5"
 _ "github.com/go-resty/resty/v2"
 _ "github.com/hashicorp/go-retryablehttp"
 _ "gopkg.in/yaml.v3"
 _ "github.com/tidwall/gjson"
 _ "github.com/oklog/ulid/v2"
 _ "github.com/prometheus/client_golang/prometheus"
 _ "github.com/prometheus/client_golang/prometheus/promhttp"
 _ "github.com/fsnotify/fsnotify"
 _ "golang.org/x/time/rate"
)
