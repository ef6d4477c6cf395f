#!/bin/bash
# Health check of the stand-in image (one word for podman-compose 1.0.3): the port accepts.
exec 3<>/dev/tcp/127.0.0.1/27017
