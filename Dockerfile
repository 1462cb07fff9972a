# One image for every part of the gateway; the command picks the part.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    INTAKE_DATA_DIR=/var/lib/intake \
    INTAKE_BIND_HOST=0.0.0.0

RUN useradd --system --home-dir /var/lib/intake --create-home intake
WORKDIR /opt/intake
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY channels ./channels
COPY workers ./workers
RUN pip install --no-cache-dir . && rm -rf /root/.cache

USER intake
VOLUME ["/var/lib/intake"]
EXPOSE 2525 8000
ENTRYPOINT ["intake"]
CMD ["run"]
